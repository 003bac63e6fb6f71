"""onecluster's Invoke tasks: one collection per layer, composed into the root namespace."""

from invoke import Collection

from . import ai, apps, cluster, network, observability, scheduling, secrets, storage, talos

namespace = Collection()
for _module in (talos, secrets, network, storage, observability, scheduling, ai, apps, cluster):
    namespace.add_collection(_module.ns)
