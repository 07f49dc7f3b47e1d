"""Trade-finance messages (issue 20, item 4; docs/finance.md, "Trade-finance messages").

The ``tradefin`` app (``app.APP``, built in, named in a chain's ``[chain] apps`` after
``finance``): letters of credit, bank guarantees, factoring and forfaiting as signed steps
between finance's organizations, each carrying document fingerprints (the documents stay
off chain; the sharing app's encrypted records can hold them).

* ``codes.py`` — op and refusal codes (``TradeReject``), domains, state keys, ids, limits;
* ``records.py`` — record codecs; ``common.py`` — what the handlers share;
* ``lc.py``, ``guarantee.py``, ``factoring.py``, ``forfaiting.py`` — the ops and builders;
* ``views.py`` — penetration queries (an LC's whole history, a receivable's assignment chain);
* ``client.py`` — ``TradeFin`` / ``TradeParty``, which derive every declared key.
"""
