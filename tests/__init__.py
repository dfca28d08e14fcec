"""vmcore-dap's tests: a package so helpers import as ``tests.helpers.*`` from the repo root."""
