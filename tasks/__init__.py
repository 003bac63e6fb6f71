"""onecluster's Invoke tasks: one collection per layer, composed into the root namespace."""

from invoke import Collection

from . import ai, apps, charts, cluster, network, observability, scheduling, secrets, storage, talos

namespace = Collection()
_LAYERS = (talos, secrets, network, storage, observability, scheduling, ai, apps, cluster)
for _module in (*_LAYERS, charts):
    namespace.add_collection(_module.ns)
