//! The SSH transport over russh.
