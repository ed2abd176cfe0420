"""Tables in and out: parse and register uploads, track their status, give the enriched rows back."""
