"""iptables text and netfilter semantics (stdlib only).

``tokens`` splits and quotes iptables arguments exactly as iptables does; the engine and
the node-agent use it too, so there is one tokenizer in the code base.
"""
