from social_pipelines_tests.sandbox.fixtures import sandbox, sandbox_server

__all__ = ["sandbox", "sandbox_server"]
