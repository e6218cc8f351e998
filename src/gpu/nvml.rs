//! NVML through nvml-wrapper. (Stub: to be written.)
