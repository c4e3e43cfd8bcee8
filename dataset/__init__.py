"""The real activity-data set: what is known of it (`real`: names, blob ids, published
figures), fetching it (`fetch`: `hhar data fetch`), and holding a folder to it (`check`:
`hhar data check`, and which set a folder holds for `hhar produce` and `hhar demo`)."""
