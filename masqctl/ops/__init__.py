"""Operations: what each command does, below the CLI and above cluster and analysis.

Each operation is plain orchestration over ``masqctl.cluster`` (gathering, writing) and
``masqctl.analysis`` (pure answers): ``inspect`` (gather, honour ``--no-azure`` on a bundle,
report), ``explain`` (the two-pass live gather of one flow's node), ``apply`` (backup → write →
verify → rollback of a plan). No typer, no rich, no printing: progress goes through callbacks,
results are values. Imports: cluster, analysis, errors; never ``masqctl.cli``.
"""
