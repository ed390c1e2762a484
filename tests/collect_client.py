"""Small HTTP helpers for the labelling-app tests: one labeller's requests by name.

A test environment class mixes :class:`CampaignClient` in and sets ``client`` (a Starlette
``TestClient``), ``tokens`` (name -> token) and ``cid`` (the campaign id).
"""
from __future__ import annotations


class CampaignClient:
    client = None
    tokens: dict = {}
    cid = None

    def h(self, who):
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who, url):
        return self.client.get(url, headers=self.h(who))

    def post(self, who, url, **body):
        return self.client.post(url, headers=self.h(who), json=body)

    def next(self, who):
        r = self.get(who, f"/api/campaigns/{self.cid}/next")
        assert r.status_code == 200, r.text
        return r.json()

    def judge(self, who, gif, answer):
        return self.post(who, f"/api/campaigns/{self.cid}/judgements", gif_id=gif, answer=answer)
