/* A shared library that is not a unit: no sprocket_unit_entry. */
int not_a_sprocket_unit(void) { return 42; }
