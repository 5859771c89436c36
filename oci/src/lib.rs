//! OCI bundle and config.json handling (issue 3).
