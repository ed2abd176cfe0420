"""The web: the one guarded fetch path, the crawler and the extractor that reads company pages."""
