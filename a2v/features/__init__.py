"""Video features (optical flow) and the versioned HDF5 shard that stores every per-frame feature."""
