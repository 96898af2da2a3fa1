import requests

url = "https://gateway.pixazo.ai/byteplus/v1/generateFrame2VideoTask"

headers = {
    "Content-Type": "application/json",
    "Cache-Control": "no-cache",
    "Ocp-Apim-Subscription-Key": "YOUR_SUBSCRIPTION_KEY"
}

data = {
    "model": "seedance-1-0-lite-i2v-250428",
    "text": "Realistic style. Aeroplane from takeoff to fly captured in camera",
    "first_frame": "https://pub-582b7213209642b9b995c96c95a30381.r2.dev/wan-t2i/wan-t2i-75d44f7d-a954-46b0-a603-10c09cb5df84-0.png",
    "last_frame": "https://pub-582b7213209642b9b995c96c95a30381.r2.dev/wan-t2i/wan-t2i-47c06b16-ce7f-4977-8f7c-a04384409934-0.png"
}

response = requests.post(url, json=data, headers=headers)
print(response.json())
