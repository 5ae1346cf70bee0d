"""Readiness for leaders: an organisation described in plain answers, its likely trajectory and which lever first.

- ``profile``: the questions and their answers (a pydantic model), the commented template, the terminal questionnaire;
- ``mapping``: each answer's documented rule to scenario fields, the levers a leader controls and the risks they do not;
- ``network``: the optional staff network survey (CSV) and the five trusts' emulated December 2018 surveys;
- ``dimensions``: the readiness profile on the instruments leaders know (ORIC, MUSIQ, NHS IMPACT, i-PARIHS);
- ``nearest``: the nearest of the five trusts at their start, by a documented distance;
- ``analysis``: the runs (base, one arm per lever and risk, common random numbers) and what is read from them;
- ``report``: the board report (HTML with embedded figures, printable PDF, markdown);
- ``cli``: ``orgsim readiness init`` and ``orgsim readiness PROFILE``.
"""
