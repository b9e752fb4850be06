"""What tests share: fresh databases (`databases`), real servers (`servers`), factories that go
through the public API (`factories`), and the in-process tier (`transactions`, `records`):
service code in a transaction rolled back at the end of the test."""
