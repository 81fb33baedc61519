"""The ``approx`` command: parse options, call one library function, print or plot its result."""
