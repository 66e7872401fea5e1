"""sprocket_unit: builds a unit, the shared library of user code a sprocket child loads."""

def sprocket_unit(name, srcs, deps = [], copts = [], local_defines = [], **kwargs):
    """Builds lib<name>.so from srcs.

    The unit links only the API headers and the entry point: glog, abseil and the runtime are
    resolved from the host binary at dlopen time, so there is one copy of each per process.

    Args:
      name: the unit's name; the output is lib<name>.so.
      srcs: sources with SPROCKET_PROCESS(...) registrations.
      deps: header-only libraries the sources need.
      copts: extra compiler options.
      local_defines: preprocessor defines for this unit's sources only.
      **kwargs: passed to cc_binary (e.g. visibility, tags).
    """
    native.cc_binary(
        name = "lib%s.so" % name,
        srcs = srcs,
        deps = ["//process:unit_api", "//process:unit_entry"] + deps,
        copts = copts,
        local_defines = local_defines,
        linkshared = True,
        linkstatic = True,
        **kwargs
    )
