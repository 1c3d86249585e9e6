//! Skylight's end-to-end tests live in `tests/`: each starts the real binaries on loopback
//! through `skylight-test-support`. This library is empty; cargo needs a target here.
