"""iptables text and netfilter semantics: pure, stdlib only, below everything but ``masqctl.errors``.

Reading rules: ``tokens`` splits and quotes arguments exactly as iptables does (the engine and the
node-agent use it too: one tokenizer in the code base), ``vocabulary`` names the options and
modules iptables knows, ``dump`` turns ``iptables-save`` text into tables, chains and rules, and
``facts`` reads what a dump does not say (``ip -o addr``, ``ipset save``).

Deciding a packet: ``evaluate`` walks a new connection's first packet through nat the way the
kernel does, with ``matches`` (what each match means on one path), ``values`` (addresses, ports
and marks as the kernel compares them), ``walk`` (the data of a walk: packet, steps, outcomes) and
``outcome`` (where a path stopped, as a verdict).

Comparing rules: ``canonical`` (rules by meaning, not text) and ``chaindiff`` (a live agent chain
and its jump against the intended rules).

A second source of node evidence is a module here (`conntrack`; nftables rulesets: `nft` the model
and its JSON reader, `nfttext` the text form, `nftread` either, `nftshow` rules as text, `nfteval` the walk
of their nat chains): text in,
plain values out. Imports: the standard library and ``masqctl.errors`` only.
"""
