//! zego-server
