"""An entry point whose module cannot be imported: the registry must name it and go on."""

import cb_example_dependency_that_is_not_installed  # noqa: F401
