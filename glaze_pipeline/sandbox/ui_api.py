"""What a user clicks in the Dagster UI, through its GraphQL API (Dagster's own client), for tests and benches.

`DagsterGraphQLClient` covers launching single runs only; backfills, dynamic partitions and sensors are
the UI's mutations, sent with the client's `_execute`: stop the new-tables sensor (the toggle), add a
table's partition (the backfill dialog's "add partition"), launch a backfill of the `enrich_table` job
over some partitions, and read its runs.
"""

from __future__ import annotations

from typing import Any

from dagster_graphql import DagsterGraphQLClient

from glaze_pipeline.defs.jobs import ENRICH_TABLE_JOB
from glaze_pipeline.sandbox.dev import wait_until

REPOSITORIES = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
SENSOR = """query ($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename ... on Sensor { id sensorState { status ticks(limit: 1) { status } } } ... on Error { message }
  }
}"""
STOP_SENSOR = """mutation ($id: String!) {
  stopSensor(id: $id) { __typename ... on StopSensorMutationResult { instigationState { status } }
    ... on Error { message } }
}"""
ADD_PARTITION = """mutation ($repo: RepositorySelector!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: "tables", partitionKey: $key) {
    __typename ... on AddDynamicPartitionSuccess { partitionKey } ... on Error { message }
  }
}"""
LAUNCH_BACKFILL = """mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message }
  }
}"""
BACKFILL = """query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename ... on PartitionBackfill { status runs { runId status tags { key value } } } ... on Error { message }
  }
}"""
JOB_RUNS = (
    """query ($job: String!) { runsOrError(filter: {pipelineName: $job}) { ... on Runs { results { runId } } } }"""
)
GOING = """{
  runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
    ... on Runs { results { runId } }
  }
}"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
TABLES_LOCATION = "glaze_pipeline"  # workspace.yaml's main location; the records one serves enrich_record


class GraphQLProblem(RuntimeError):
    pass


class DagsterUi:
    """The table code location of a running `glaze dev` (beside the record one), on 127.0.0.1:port."""

    def __init__(self, port: int, location: str = TABLES_LOCATION) -> None:
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
        nodes = self.ask(REPOSITORIES)["repositoriesOrError"]["nodes"]
        [repository] = [n for n in nodes if n["location"]["name"] == location]
        self.repo = {"repositoryName": repository["name"], "repositoryLocationName": repository["location"]["name"]}

    def ask(self, query: str, **variables: Any) -> dict[str, Any]:
        return dict(self.client._execute(query, variables))

    def _expect(self, answer: dict[str, Any], typename: str) -> dict[str, Any]:
        if answer.get("__typename") != typename:
            raise GraphQLProblem(f"expected {typename}, got {answer}")
        return answer

    def stop_sensor(self, name: str) -> None:
        """Switch a sensor off and wait until a tick that began before is over (its run requests submitted)."""
        selector = self.repo | {"sensorName": name}
        sensor = self._expect(self.ask(SENSOR, selector=selector)["sensorOrError"], "Sensor")
        stopped = self._expect(self.ask(STOP_SENSOR, id=sensor["id"])["stopSensor"], "StopSensorMutationResult")
        if stopped["instigationState"]["status"] != "STOPPED":
            raise GraphQLProblem(f"sensor {name} still {stopped['instigationState']['status']}")

        def no_tick_going() -> bool:
            ticks = self.ask(SENSOR, selector=selector)["sensorOrError"]["sensorState"]["ticks"]
            return not ticks or ticks[0]["status"] != "STARTED"

        wait_until(no_tick_going, f"the last tick of {name}", 60)

    def add_partition(self, table_id: str) -> None:
        added = self.ask(ADD_PARTITION, repo=self.repo, key=table_id)["addDynamicPartition"]
        self._expect(added, "AddDynamicPartitionSuccess")

    def launch_backfill(self, table_ids: list[str]) -> str:
        """One backfill of the table job over these partitions; its runs take the job's config (a job backfill
        ignores `runConfigData`), as from the UI's dialog."""
        selector = {"partitionSetName": f"{ENRICH_TABLE_JOB}_partition_set", "repositorySelector": self.repo}
        params: dict[str, Any] = {"selector": selector, "partitionNames": table_ids}
        launched = self.ask(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        return str(self._expect(launched, "LaunchBackfillSuccess")["backfillId"])

    def finished_backfill_runs(self, backfill_id: str, count: int) -> dict[str, str] | None:
        """Partition → run status once the backfill launched `count` runs and each has finished, else None."""
        backfill = self._expect(self.ask(BACKFILL, id=backfill_id)["partitionBackfillOrError"], "PartitionBackfill")
        runs = backfill["runs"]
        if backfill["status"] == "REQUESTED" or len(runs) < count or any(r["status"] not in FINISHED for r in runs):
            return None
        return {next(t["value"] for t in r["tags"] if t["key"] == "dagster/partition"): r["status"] for r in runs}

    def wait_for_backfill(self, backfill_id: str, count: int, timeout_s: float) -> tuple[dict[str, str], float]:
        """The finished runs by partition, and the seconds waited (the state of another process: polled)."""
        seen: list[dict[str, str]] = []

        def done() -> bool:
            runs = self.finished_backfill_runs(backfill_id, count)
            if runs is not None:
                seen.append(runs)
            return runs is not None

        waited = wait_until(done, f"backfill {backfill_id}'s {count} runs", timeout_s, every_s=1)
        return seen[-1], waited

    def wait_until_idle(self, timeout_s: float) -> None:
        """Until no run is queued or going (the marts run that follows a landing, say): runs are processes of
        their own, which stopping `glaze dev` does not stop."""
        wait_until(lambda: not self.ask(GOING)["runsOrError"]["results"], "every run to finish", timeout_s, every_s=1)

    def job_run_ids(self, job: str = ENRICH_TABLE_JOB) -> list[str]:
        return [r["runId"] for r in self.ask(JOB_RUNS, job=job)["runsOrError"]["results"]]
