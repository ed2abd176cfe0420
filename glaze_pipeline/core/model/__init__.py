"""The vocabulary every layer speaks: fields, statuses, candidates, URLs, the provider contract, errors."""
