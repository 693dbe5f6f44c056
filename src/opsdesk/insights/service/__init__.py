"""Operations of the insights domain, one concept per module: metric series and drill-down,
the live floor, the weekly review, trends, experiments and exports. Every function takes
``(session, actor, ...)`` and checks ``report.read`` (or ``rule.manage`` to change experiments)."""
