//! Q.931 call control on the D-channel: messages, information elements
//! and the call state machines of the user and the network side. Being
//! written.
