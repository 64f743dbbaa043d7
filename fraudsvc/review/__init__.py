"""The analysts' review pages: sign-in, the queue, a case and its verdict, server-rendered with
autoescaping templates and one vendored stylesheet, served by the same Litestar app."""

from fraudsvc.review.routes import review_router

__all__ = ["review_router"]
