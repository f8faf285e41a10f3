"""The command line: thin click commands over the vmm layer, with one error boundary."""
