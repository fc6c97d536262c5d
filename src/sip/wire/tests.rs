//! Whole-module tests of the wire layer: typed accessors, serialisation
//! round trips and no-panic properties.
