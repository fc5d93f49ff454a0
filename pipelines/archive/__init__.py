"""The archive domain, on the core: keys and sightings, as-of resolution, loads and
history, the XML dump's records, the incremental plan and re-extraction."""
