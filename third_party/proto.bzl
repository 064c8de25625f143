"""C++ code generation for .proto files with Debian's protoc and grpc_cpp_plugin.

Bazel's native proto rules want @com_google_protobuf (a download), so this
macro runs /usr/bin/protoc in a genrule and wraps the outputs in a cc_library.
Imports are written from the workspace root.
"""

def cc_grpc_proto_library(name, srcs, deps = [], grpc = True, visibility = None):
    """Generates <name> (cc_library) from srcs.

    Args:
      name: the cc_library's name.
      srcs: .proto files in this package.
      deps: other cc_grpc_proto_library targets whose .proto files are imported.
      grpc: also generate gRPC service stubs.
      visibility: as usual.
    """
    pkg = native.package_name()
    outs = []
    hdrs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        hdrs.append(base + ".pb.h")
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
            hdrs.append(base + ".grpc.pb.h")
    dep_protos = [d + "_protos" for d in deps]
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + dep_protos,
        visibility = visibility,
    )
    plugin = " --grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin" if grpc else ""
    native.genrule(
        name = name + "_gen",
        srcs = srcs + dep_protos,
        outs = outs,
        cmd = "/usr/bin/protoc --proto_path=. --cpp_out=$(GENDIR)" + plugin + " " +
              " ".join([pkg + "/" + s for s in srcs]),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = hdrs,
        deps = deps + ["//third_party:grpc", "//third_party:protobuf"],
        visibility = visibility,
    )
