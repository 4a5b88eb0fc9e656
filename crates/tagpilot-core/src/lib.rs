//! The engines of tagpilot, free of cluster I/O so that the controllers and `tagpilot run` share them.
