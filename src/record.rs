//! The recorder: an HTTP thread scraping `/metrics` and a GPU thread polling NVML, each on its
//! own schedule, both writing raw rows into a recording. (Stub: to be written.)
