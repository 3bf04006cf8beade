"""Batch inference on Ray Data: `keypoints detect input=... output=... engine=ray` (the `scale` extra).

A list of photos (a folder, a text file of paths, or a column of a Parquet or CSV file: inputs.py)
is cut into fixed shards; a pool of Ray actors, each holding one Detector, takes the shards through
`Dataset.map_batches` and writes each as one Parquet file, whole or not at all (shards.py). The same
code runs on a laptop (`ray.init()` starts a local cluster) and on a cluster (`engine.address=` or
RAY_ADDRESS); Ray restarts a killed actor and retries its shard, and a re-run skips the shards
already written. docs/SCALE.md says how to run it and what was measured.
"""
