"""Where Sigma's own Ray processes go: the service actors and (by default) the API replicas on
the head node. The 3-node test (tests/serve_app/test_multinode.py) checks the processes of a
real cluster; here, the options asked for and the fallback for a head without CPUs."""

from __future__ import annotations

import secrets

from cluster.config import Settings

HEAD = "node:__internal_head__"


def _actor_options(settings):
    from serve_app.app import build_app

    return build_app(settings)._bound_deployment.ray_actor_options


def test_the_api_replicas_ask_for_the_head_unless_it_cannot_hold_them(ray_session, tmp_path):
    from cluster.runtime import head_offers_cpus

    # the session's Ray: one node, the head, of 2 CPUs
    assert head_offers_cpus(2) and not head_offers_cpus(2.5)
    settings = dict(home=tmp_path, jwt_secret=secrets.token_urlsafe(32))
    assert _actor_options(Settings(**settings)) == {"num_cpus": 0.25, "resources": {HEAD: 0.001}}
    # a head too small for a replica (KubeRay heads often have --num-cpus=0): Serve places them
    assert _actor_options(Settings(**settings, ingress_num_cpus=3)) == {"num_cpus": 3}
    assert _actor_options(Settings(**settings, ingress_on_head=False)) == {"num_cpus": 0.25}

