//! Bindery's benchmarks: the bench targets in `bench/benches/`, one file each
//! (`BENCHMARKS.md` says how to run them).
