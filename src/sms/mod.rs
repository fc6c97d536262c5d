//! SMS: the SMPP 3.4 client (sans-IO session + tokio driver), SMS encoding,
//! and the HTTP SMS adapter. (Being built; see issue 4.)

pub mod config;
