//! A scripted GPU source for tests. (Stub: to be written.)
