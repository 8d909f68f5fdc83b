"""The typed rules: one module per extractor family (dates, quantities,
lists, entities, definitions, fields, clauses, yes/no), each reading one
evidence sentence (``base.Evidence``) and proposing scored spans
(``base.Span``); ``registry`` says which families answer which question type."""
