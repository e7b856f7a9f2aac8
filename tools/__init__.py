"""Developer tools that are not part of the package: screenshots and the Chromium setup shared by tests and
benchmarks."""
