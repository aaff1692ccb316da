//! Template contexts, built from the inventory.
