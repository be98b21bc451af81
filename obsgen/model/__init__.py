"""The typed model: what a spec means once it has been checked and defaulted."""
