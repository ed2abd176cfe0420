// The console's only script: join the picked fields for the upload form, and refresh the tables while runs go.
"use strict";

const upload = document.getElementById("upload");
if (upload) {
  upload.addEventListener("submit", () => {
    const picked = [...upload.querySelectorAll('input[name="pick"]:checked')].map((box) => box.value);
    upload.querySelector('input[name="fields"]').value = picked.join(",");
  });
}

const OPEN = new Set(["pending", "queued", "running"]);

function percent(share) {
  return Math.round(share * 100) + "%";
}

function render(row, table) {
  row.querySelector(".status").textContent = table.status;
  const bar = row.querySelector("progress");
  const progress = table.progress;
  bar.max = progress ? progress.steps_total || 1 : 1;
  bar.value = progress ? progress.steps_done : table.status === "enriched" ? 1 : 0;
  const coverage = row.querySelector(".coverage");
  coverage.replaceChildren(
    ...Object.entries(table.coverage).map(([field, share]) => {
      const span = document.createElement("span");
      span.textContent = `${field} ${percent(share)}`;
      return span;
    }),
  );
  const runCell = row.querySelector(".run");
  if (table.run_url && !runCell.querySelector("a")) {
    const link = document.createElement("a");
    link.href = table.run_url;
    link.textContent = "run";
    link.target = "_blank";
    link.rel = "noopener";
    runCell.append(link);
  }
  const exportCell = row.querySelector(".export");
  if (table.status === "enriched" && !exportCell.querySelector("a")) {
    for (const format of ["csv", "parquet"]) {
      const link = document.createElement("a");
      link.href = `/console/tables/${encodeURIComponent(table.table_id)}/export?format=${format}`;
      link.textContent = format === "csv" ? "CSV" : "Parquet";
      link.setAttribute("download", "");
      exportCell.append(link, " ");
    }
  }
}

async function refresh() {
  const rows = document.querySelectorAll("#tables tr[data-table]");
  if (![...rows].some((row) => OPEN.has(row.querySelector(".status").textContent))) return;
  const response = await fetch("/console/tables.json", { credentials: "same-origin" });
  if (response.ok) {
    const tables = new Map((await response.json()).map((t) => [t.table_id, t]));
    for (const row of rows) {
      const table = tables.get(row.dataset.table);
      if (table) render(row, table);
    }
  }
  setTimeout(refresh, 1000);
}

setTimeout(refresh, 1000);
