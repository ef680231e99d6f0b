//! Integration tests of cache-runtime live in `tests/`; this library is empty.
