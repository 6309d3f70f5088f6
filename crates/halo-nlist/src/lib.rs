//! Neighbour lists (placeholder until the cell list lands).
