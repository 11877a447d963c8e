# recstream worker image. Build: docker build -t recstream .
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY state ./state
COPY streams ./streams
RUN pip install --no-cache-dir .
ENV RECSTREAM_WEB_HOST=0.0.0.0
EXPOSE 6066
CMD ["recstream", "worker"]
