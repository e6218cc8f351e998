//! What a recording holds: time span, scrape outcomes, files, families, GPUs. (Stub.)
