# A package, so that these test modules are imported as integration.test_*
# and never clash with a module of the same name in tests/gpu.
