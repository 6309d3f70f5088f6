//! Structure I/O (placeholder until the readers land).
