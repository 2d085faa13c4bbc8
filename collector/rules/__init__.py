"""The rules engine: measurements from reports, the rule file schema, loading, pure evaluation.

``measure`` names what a rule can look at; ``model`` is the rule file schema; ``loader`` reads a
folder of rule files into a :class:`~collector.rules.loader.RuleSet`; ``evaluate`` turns an
asset's latest report into the findings active now. Nothing here reads the clock or logs.
"""
