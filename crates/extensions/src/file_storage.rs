//! `file_storage`: a directory per component for state that survives restarts.
