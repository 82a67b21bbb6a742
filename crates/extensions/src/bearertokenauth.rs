//! `bearertokenauth`: bearer-token authentication for receivers.
