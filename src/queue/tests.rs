//! Queue tests: written by the code, damaged by the test, recovered.
